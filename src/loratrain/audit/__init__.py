"""`loratrain audit`: the full pass over the training images, captions and latent caches (see docs/audit.md)."""
