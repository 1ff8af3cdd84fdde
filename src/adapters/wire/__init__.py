"""The wire model, generated from proto/ by `make proto` (scripts/generate-wire.sh): do not edit."""
