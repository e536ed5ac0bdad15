"""The shared core: model + soft-prompt runtime, prompt format, languages, generation, post-processing.

Everything above (tuning, evaluation, server, CLI) imports from here; nothing here imports from them.
Heavy modules (torch, transformers, peft) are imported by the submodules that need them, so that
`import greencoder.core` stays cheap.
"""
