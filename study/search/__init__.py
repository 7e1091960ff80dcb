"""The search stage: Hyperband over MobileNetV2 variants, safe to kill, inside a time budget.

Public face: `run.run_search` (the stage), `plan.hyperband_plan` (the plan up front, no Keras) and
`distributed.resolve_role` (--chief/--worker). The submodules are imported where used, so importing this
package loads neither TensorFlow nor keras-tuner.
"""
