"""medchat: grounded medical question answering with citations."""

__version__ = "0.1.0"
