from __future__ import annotations

import subprocess
import sys

from medchat.retrieval.sparse import document_vector, query_vector, term_index, terms


def test_terms_are_folded_stemmed_and_free_of_stopwords() -> None:
    assert terms("What are the Symptoms of Hepatitis B and Q fever?") == ["symptom", "hepatitis", "b", "q", "fever"]
    assert terms("Café NAÏVE studies") == ["cafe", "naive", "study"]
    assert terms("my mother's doctor doesn't know") == ["mother", "doctor", "know"]
    assert terms("diabetes, bronchitis, glasses") == ["diabete", "bronchitis", "glass"]


def test_term_indices_are_stable_across_processes() -> None:
    script = "from medchat.retrieval.sparse import term_index; print(term_index('diabetes'))"
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(other.stdout) == term_index("diabetes")
    assert term_index("diabetes") == 4269864931
    assert 0 <= term_index("x") < 2**32


def test_query_vector_weighs_each_distinct_term_once() -> None:
    vector = query_vector("asthma asthma inhaler")
    assert sorted(vector.indices) == sorted({term_index("asthma"), term_index("inhaler")})
    assert set(vector.values) == {1.0}
    assert list(vector.indices) == sorted(vector.indices)
    assert len(query_vector("what is the")) == 0


def test_document_weights_saturate_with_frequency_and_shrink_with_length() -> None:
    def weight(text: str, term: str) -> float:
        vector = document_vector(text)
        return dict(zip(vector.indices, vector.values, strict=True))[term_index(term)]

    once = weight("insulin " + "filler " * 20, "insulin")
    twice = weight("insulin insulin " + "filler " * 19, "insulin")
    many = weight("insulin " * 10 + "filler " * 11, "insulin")
    assert once < twice < many < 2.2
    assert twice - once > (many - twice) / 8 * 3  # each extra occurrence adds less
    assert weight("insulin " + "filler " * 200, "insulin") < once
