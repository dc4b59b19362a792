import { loadConfig } from '../../../shared/config.ts';
import { createRegisterHandler } from '../../../shared/register-handler.ts';

// A bad environment throws here, at boot: the function never serves with a half-read config.
Deno.serve(createRegisterHandler({ config: loadConfig(Deno.env.toObject()) }));
