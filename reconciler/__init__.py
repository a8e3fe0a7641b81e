"""reconciler: visualizations-as-code for the Pixxel satellite imagery API."""

__version__ = "0.1.0"
