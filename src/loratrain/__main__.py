"""`python -m loratrain`: the same entry point as the `loratrain` console script."""

from loratrain.cli import main

if __name__ == "__main__":
    main()
