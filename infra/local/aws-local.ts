// The account and region the local runtime pretends to be, for ARNs and SDK configuration.
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

/** DynamoDB Local and the emulators accept any credentials; the SDK only needs some. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
