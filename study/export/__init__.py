"""The model leaves the study: the best model as TFLite files (float32, float16, dynamic-range and full-integer
int8), each scored on the test set against the Keras model and timed on this CPU.

Public face: `stage.export_best_model` (the stage), `convert.export_variants`, and `runtime.TfliteModel`, which runs a
file without TensorFlow where `ai-edge-litert` is installed (predict.py --model tflite-*).
"""
