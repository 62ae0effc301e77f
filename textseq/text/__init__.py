"""Text preprocessing: streaming reader, cleaning, tokenization (chars, jieba/rjieba, NLTK),
stopwords, normalization, and the ``preprocess`` job writing encoded id streams.

    from textseq.text.pipeline import Pipeline, PipelineConfig
    from textseq.text.preprocess import PreprocessConfig, preprocess
"""
