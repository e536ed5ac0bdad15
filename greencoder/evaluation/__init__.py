"""The paper's offline evaluation (`greencoder evaluate` / `report`). Imports only greencoder.core."""
