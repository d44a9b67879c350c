"""`loratrain report`: what a training run produced, in one self-contained HTML page and its numbers.

Pipeline: `run` finds the run (record folder, output_dir or config) and the paths sd-scripts wrote to;
`curves` reads the TensorBoard event files, `samples` matches the sample images to prompts and steps,
`health` inspects every saved adapter file; `build` assembles the numbers (what `--json` prints),
`figures` draws them with matplotlib (Agg) and `html` writes the page with every image embedded;
`cache` keeps thumbnails and adapter checks between builds of the same report.
"""
