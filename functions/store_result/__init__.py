"""StoreResultFunction: the ClassifyImage task that makes a result DONE with its labels."""
