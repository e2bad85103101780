import type * as tfl from '@tensorflow/tfjs-layers';

/** One `Conv2D` layer of a model, as compression strategies and reports see it. */
export interface ConvLayerInfo {
  name: string;
  /** `[height, width]` of the kernel window. */
  kernelSize: [number, number];
  inChannels: number;
  outChannels: number;
  /** `[vertical, horizontal]` stride. */
  strides: [number, number];
  /** `[height, width]` of the layer's output feature map. */
  outputSize: [number, number];
  /** Weights in the kernel (and bias, if any). */
  params: number;
  trainable: boolean;
}

function pair(value: unknown, layer: string, field: string): [number, number] {
  const values = Array.isArray(value) ? value : [value, value];
  const [first, second] = values;
  if (typeof first !== 'number' || typeof second !== 'number') {
    throw new Error(`Conv2D layer '${layer}' has no numeric ${field} (got ${JSON.stringify(value)})`);
  }
  return [first, second];
}

function singleShape(shape: tfl.Shape | tfl.Shape[], layer: string): (number | null)[] {
  const first = shape[0];
  const single = Array.isArray(first) ? first : (shape as tfl.Shape);
  if (single.length !== 4) throw new Error(`Conv2D layer '${layer}' is not used on 4-D tensors`);
  return single;
}

/**
 * The stock `Conv2D` layers of `model` in graph order, with kernel size, channels, stride and output size.
 * Other layers (including decomposed replacements, which are not `Conv2D`) are left out.
 */
export function listConvLayers(model: tfl.LayersModel): ConvLayerInfo[] {
  return model.layers
    .filter((layer) => layer.getClassName() === 'Conv2D')
    .map((layer) => {
      const config = layer.getConfig();
      const input = layer.input;
      const [, , , inChannels] = singleShape(
        Array.isArray(input) ? input.map((t) => t.shape) : input.shape,
        layer.name,
      );
      const [, height, width, outChannels] = singleShape(layer.outputShape, layer.name);
      if (inChannels == null || outChannels == null || height == null || width == null) {
        throw new Error(
          `Conv2D layer '${layer.name}' has a dynamic shape; build the model with a fixed input size`,
        );
      }
      return {
        name: layer.name,
        kernelSize: pair(config.kernelSize, layer.name, 'kernelSize'),
        inChannels,
        outChannels,
        strides: pair(config.strides, layer.name, 'strides'),
        outputSize: [height, width],
        params: layer.countParams(),
        trainable: layer.trainable,
      };
    });
}
