"""greencoder: energy-aware code generation with efficiency soft prompts (Contrastive Prompt Tuning)."""

__version__ = "0.1.0"
