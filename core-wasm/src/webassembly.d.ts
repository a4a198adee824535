// The few WebAssembly JS API types the core uses. tsconfig's lib (es2023) has no DOM, and
// @types/node 20 does not declare the WebAssembly namespace, so they are declared here.
declare namespace WebAssembly {
  interface Memory {
    readonly buffer: ArrayBuffer;
    grow(deltaPages: number): number;
  }
  // biome-ignore lint/complexity/noBannedTypes: opaque compiled module
  type Module = {};
  interface Instance {
    readonly exports: Record<string, unknown>;
  }
  const Module: {
    new (bytes: BufferSource): Module;
  };
  const Instance: {
    new (module: Module, imports?: Record<string, Record<string, unknown>>): Instance;
  };
}
