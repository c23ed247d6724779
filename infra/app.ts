// Entry point of `cdk synth` / `cdk deploy` (see cdk.json).
import { App } from 'aws-cdk-lib';
import { buildApp } from './stack.ts';

buildApp(new App());
