"""The gradcam stage: Grad-CAM maps of the best model, their trust scores, the gallery and the comparison
grid across the ablation's models.

Public face: `stage.gradcam_gallery` (the stage), `gradcam.GradCam` (batched maps), `scores` (deletion AUC,
lesion energy, border share) and `gallery`/`grid` (what is drawn).
"""
