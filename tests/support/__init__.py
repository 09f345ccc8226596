"""Helpers the tests share (functions, classes, constants; never fixtures, which stay in conftest.py files).

Test modules import helpers from here only: never from another test module or a conftest.
"""
