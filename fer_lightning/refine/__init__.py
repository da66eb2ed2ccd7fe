"""Tools judged on PublicTest only (never PrivateTest): precise BatchNorm, weight soups, distillation."""
