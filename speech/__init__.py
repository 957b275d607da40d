"""speech: an LSTM-CTC speech recognition toolkit on TensorFlow/Keras."""

__version__ = "0.1.0"
