throw new Error('plugin top-level failure');
