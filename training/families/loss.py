"""The distillation loss (Hinton et al. 2015), apart from both its users: fine-tuning (bert.py) computes it when
a student learns from teacher outputs, and distillation (distillation.py) prepares those outputs. Neither
imports the other for it."""

from __future__ import annotations


def distillation_loss(logits, teacher_log_probabilities, gold, temperature: float, alpha: float):
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy on the tweets with a gold label
    (index -1 marks a transfer tweet). T^2 keeps the soft term's gradients on the hard term's scale."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's own convention)

    soft_teacher = torch.softmax(teacher_log_probabilities.float() / temperature, dim=-1)
    student = torch.log_softmax(logits / temperature, dim=-1)
    soft = F.kl_div(student, soft_teacher, reduction="batchmean") * temperature**2
    has_gold = gold >= 0
    hard = F.cross_entropy(logits[has_gold], gold[has_gold]) if bool(has_gold.any()) else logits.sum() * 0
    return alpha * soft + (1 - alpha) * hard
