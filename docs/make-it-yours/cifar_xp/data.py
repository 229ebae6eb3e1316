"""Fake CIFAR-10: torchvision's FakeData, random 32×32 colour images, 10 classes."""

from experimaestro import Config, Param, field


class FakeCIFAR(Config):
    """``size`` labelled images, image i drawn from the seed ``offset + i``"""

    size: Param[int]
    """Number of images"""
    offset: Param[int] = field(default=0)
    """FakeData's random_offset: parts ``size`` apart hold different images"""
    crop: Param[bool] = field(default=False)
    """Random 32×32 crops of the image padded by 4 pixels (for training)"""

    def torch_dataset(self, device):
        """A Dataset of (image, label), made on the CPU whatever ``device``"""
        from torchvision import transforms as T  # slow to import
        from torchvision.datasets import FakeData

        crop = [T.RandomCrop(32, padding=4)] if self.crop else []
        transform = T.Compose([*crop, T.ToTensor()])
        # size, image shape, classes, transform, target transform, random_offset
        return FakeData(self.size, (3, 32, 32), 10, transform, None, self.offset)
