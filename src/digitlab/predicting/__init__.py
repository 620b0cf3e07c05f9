"""The model wrapper: `Predictor` (a checkpoint or ONNX file + a preprocessing pipeline →
readings), the backends that run the model (`backends`), and the readings it returns
(`results`: DigitReading, NumberReading).
"""
