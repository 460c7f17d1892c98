"""Push: export a blessed model as a versioned SavedModel in the TF Serving layout."""
