#!/usr/bin/env node
// The `henge` command. TypeScript runs through tsx, so there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
