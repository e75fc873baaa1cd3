"""Classical methods the models must beat. Bicubic upsampling is
`fusionjax.physics.sampling.upsample_bicubic`."""
