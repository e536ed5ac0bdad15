"""Contrastive Prompt Tuning (`greencoder tune`): trains efficiency soft prompts. Imports only greencoder.core."""
