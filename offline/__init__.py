"""Running the Pulumi program without the Pulumi CLI or a cloud: recording mocks and the offline render."""
