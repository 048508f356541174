"""ClassifierFunction: route queue batches in, one ClassifyImage execution per new image URL out."""
