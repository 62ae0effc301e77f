"""Features from token sequences: bag-of-words, n-grams, a Kneser-Ney n-gram LM, word2vec embeddings.

``textseq.features.embeddings`` imports gensim, so it is not imported here; use it directly.
"""

from textseq.features.bow import bag_of_words, tfidf
from textseq.features.ngram_lm import KneserNeyLM, NgramScore
from textseq.features.ngrams import count_ngrams, iter_ngrams, ngram_bow

__all__ = ["KneserNeyLM", "NgramScore", "bag_of_words", "count_ngrams", "iter_ngrams", "ngram_bow", "tfidf"]
