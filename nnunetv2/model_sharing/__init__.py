"""Share trained models: export a model folder to a zip file and install one into nnUNet_results."""
