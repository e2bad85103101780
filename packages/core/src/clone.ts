import { serialization, type Tensor, tensor } from '@tensorflow/tfjs-core';
import { UnsupportedModelError } from './errors.js';
import type { Layer } from './strategy.js';

/**
 * A new, unbuilt layer of the same class and config as `layer` (same name), with `overrides` merged over the
 * config, made through the tfjs serialization map, so custom layers work once registered with
 * `tf.serialization.registerClass`.
 */
export function cloneLayer(layer: Layer, overrides: serialization.ConfigDict = {}): Layer {
  const className = layer.getClassName();
  const entry = serialization.SerializationMap.getMap().classNameMap[className];
  if (entry?.[0] !== layer.constructor) {
    throw new UnsupportedModelError(
      layer.name,
      entry === undefined
        ? `its class '${className}' is not registered for serialization; call tf.serialization.registerClass(${className}) where the class is defined`
        : `another class is registered under its class name '${className}'; give the class a unique static className`,
    );
  }
  const [cls, fromConfig] = entry;
  const config = layer.getConfig();
  // tfjs-layers' SeparableConv2D leaves its depthMultiplier out of its config, so a copy would get 1 and no
  // longer fit its weights.
  const { depthMultiplier } = layer as unknown as { depthMultiplier?: unknown };
  if (typeof depthMultiplier === 'number' && config.depthMultiplier === undefined) {
    config.depthMultiplier = depthMultiplier;
  }
  return fromConfig(cls, { ...config, ...overrides }) as Layer;
}

/** Deep copies of a layer's weights (new buffers, so nothing is shared with the layer's variables). */
export function copyWeights(layer: Layer): Tensor[] {
  return layer.getWeights().map((w) => tensor(w.dataSync().slice(), w.shape, w.dtype));
}
