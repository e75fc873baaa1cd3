"""Raw readers, scene preparation, TFDS tile builders and the tf.data input pipeline."""
