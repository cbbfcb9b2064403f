"""fer-live inference: face detection, face crops, the FER+ classifier, shared by the API and the CLI."""
