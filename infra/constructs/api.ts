// The CloudStack-compatible endpoint: an HTTP API whose one route hands every request to the api function.
import { Validations } from 'aws-cdk-lib';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export const API_PATH = '/client/api';

export interface ApiProps {
  readonly handler: IFunction;
}

export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    // The default stage is made here rather than by HttpApi, which offers no access-log settings for it.
    this.httpApi = new HttpApi(this, 'HttpApi', { createDefaultStage: false });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      autoDeploy: true,
      accessLogSettings: {
        destination: new LogGroupLogDestination(new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH })),
      },
    });
    const [route] = this.httpApi.addRoutes({
      path: API_PATH,
      methods: [HttpMethod.ANY],
      integration: new HttpLambdaIntegration('ClientApi', props.handler),
    });
    Validations.of(route).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'CloudStack clients authenticate each request with an API key and HMAC signature or a session key, which the api function verifies; API Gateway has no authorizer for that scheme.',
    });
  }

  get url(): string {
    return `${this.stage.url.replace(/\/$/, '')}${API_PATH}`;
  }
}
