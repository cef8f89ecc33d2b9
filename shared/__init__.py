"""Wire types spoken by the control plane and the probe agents. Depends on msgspec only."""
