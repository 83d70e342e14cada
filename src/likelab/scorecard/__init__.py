"""The scorecard: one objective through every capability of likelab."""
