"""lightnas.engine.loss: cross-entropy blended with a teacher's soft targets."""

import torch
import torch.nn.functional as F

from lightnas.engine.loss import distillation_loss


def test_distillation_loss_blends_cross_entropy_and_soft_targets():
    torch.manual_seed(0)
    logits, teacher, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    ce = F.cross_entropy(logits, y)
    assert torch.equal(distillation_loss(logits, teacher, y, 0.0, 4.0), ce)
    assert distillation_loss(logits, logits, y, 1.0, 4.0).abs() < 1e-6  # same as the teacher
    kl = F.kl_div(logits.log_softmax(1), teacher.softmax(1), reduction="batchmean")
    assert torch.allclose(distillation_loss(logits, teacher, y, 0.5, 1.0), 0.5 * ce + 0.5 * kl)
    hot = distillation_loss(logits, teacher, y, 1.0, 2.0)
    soft_kl = F.kl_div((logits / 2).log_softmax(1), (teacher / 2).softmax(1), reduction="batchmean")
    assert torch.allclose(hot, 4 * soft_kl)
