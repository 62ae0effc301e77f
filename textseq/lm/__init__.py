"""Recurrent language models: token streams -> TBPTT training (teacher forcing, free running, scheduled
sampling) -> self-contained checkpoints -> evaluation and generation.

    data       id streams, parallel streams, TBPTT windows
    model      RNNLanguageModel and LMConfig (embedding -> RNN stack -> softmax / adaptive softmax)
    tbptt      one window's loss in each feeding mode
    train      the training loop (resume, DDP, validation, checkpoints)
    checkpoint save / load an LM checkpoint
    sampling   temperature / top-k / top-p / greedy / beam search
    generate   text in, text out around sampling
    evaluate   teacher-forced and free-running scores next to Kneser-Ney
    report     progress lines and the loss curve
"""
