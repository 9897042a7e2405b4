// Training tests set libtorch's process-wide thread count; run test classes one after another.
[assembly: DoNotParallelize]
