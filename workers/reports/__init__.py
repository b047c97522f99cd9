"""Jobs about the delivery report: the delivery-rate drop check and its alert (`drop_alert`)."""
