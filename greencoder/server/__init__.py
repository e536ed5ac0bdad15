"""The language server (`greencoder serve`): completions with a soft prompt and the Measure-energy action.

Top of the import stack: may import greencoder.evaluation, greencoder.tuning and greencoder.core.
"""
