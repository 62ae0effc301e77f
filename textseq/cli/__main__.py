"""`python -m textseq.cli` runs the CLI (also what torchrun launches: `torchrun -m textseq train ...`)."""

from textseq.cli import main

if __name__ == "__main__":
    main()
