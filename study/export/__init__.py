"""The model leaves the study: the best model as TFLite files (float32, float16, dynamic-range and full-integer
int8), each scored on the test set against the Keras model and timed on this CPU.

Public face: `stage.export_best_model` (the stage at once), `stage.start_export` and `stage.finish_export` (the stage
around the ablation, its conversions in a child process meanwhile: `background.ConversionJob`), and
`runtime.TfliteModel`, which runs a file without TensorFlow where `ai-edge-litert` is installed (predict.py
--model tflite-*).
"""
