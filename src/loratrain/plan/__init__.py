"""Before any GPU work: dataset scan, image headers, buckets, steps and epochs, sample prompts, CLIP tokens."""
