// The shipped OS catalogue: upstream's guest OS categories and a set of guest OS types with their
// upstream descriptions (listOsCategories, listOsTypes, the ostypeid of templates and ISOs). The
// ids were generated once and are fixed: templates refer to them, so they never change. Adding a
// type or category means adding a line with a new UUID; never reuse or edit an id.

export interface OsCategory {
  id: string;
  name: string;
}

export interface OsType {
  id: string;
  oscategoryid: string;
  /** Upstream's display name, e.g. "Ubuntu 22.04 LTS". */
  description: string;
}

export const OS_CATEGORIES: readonly OsCategory[] = [
  { id: 'd6122068-9c71-4435-9953-3176e9872703', name: 'CentOS' },
  { id: 'a6e61f31-8f77-492c-9163-a4a305516e80', name: 'Debian' },
  { id: '2cae6b4a-8471-4214-8674-51ca53ec5b1e', name: 'Oracle' },
  { id: '663a368a-8e9d-4096-909c-18317b79abb7', name: 'RedHat' },
  { id: '7142b14c-43a6-49d6-8ecb-709199d0a492', name: 'SUSE' },
  { id: '3e0d0db3-b539-4a03-9c0b-f06839265578', name: 'Windows' },
  { id: 'b55d9877-19f8-4902-815d-175cde858fa3', name: 'Other' },
  { id: '4743b16d-a18c-44f5-8211-8392fd357a77', name: 'Novel' },
  { id: '92182987-05ed-4497-8708-df72b93b55d0', name: 'Unix' },
  { id: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', name: 'Ubuntu' },
  { id: '25ea7471-a3ae-497d-9a9e-4b0e6c4f8dd0', name: 'None' },
  { id: '1f030a1c-c93e-4294-8b32-764e3cfc03af', name: 'FreeBSD' },
];

export const OS_TYPES: readonly OsType[] = [
  { id: '64e7d5da-daff-47f1-87d9-612d7a7908c5', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS 5.5 (64-bit)' },
  { id: 'fb97c2dc-c374-4ebb-a288-09e56bcecd1c', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS 6.5 (64-bit)' },
  { id: '5a8634e9-dfd4-4828-a127-aa1252f90254', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS 7' },
  { id: '34e957d3-ef8d-49f1-8306-42f260deb483', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS 7.2' },
  { id: 'dfa7ee2c-4842-4577-8f8d-0f127b870727', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS 8' },
  { id: '67e53c38-317f-4fd8-8517-e4b29ca20790', oscategoryid: 'd6122068-9c71-4435-9953-3176e9872703', description: 'CentOS Stream 9' },
  { id: 'ac806eaa-4dd8-41c7-9a89-78915565e723', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 8 (64-bit)' },
  { id: '29bc2204-fe54-4508-8916-d831024f33f1', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 9 (32-bit)' },
  { id: 'e7529cfc-3a8d-4be9-a229-24c5bf00fe9f', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 9 (64-bit)' },
  { id: 'a0ddac78-1d4b-4879-9b9f-2782326e39bb', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 10 (32-bit)' },
  { id: 'a57e614f-af2f-4de2-8bc5-254900de497c', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 10 (64-bit)' },
  { id: '9aa1802e-4e96-4b47-81dd-8556057e092d', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 11 (32-bit)' },
  { id: '7ddc8369-5cb7-457d-9b3d-cbeac9dfc4da', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 11 (64-bit)' },
  { id: '7a4352c9-18a7-4bdf-81e9-3060192e2fe0', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 12 (32-bit)' },
  { id: '726676a1-3eaa-415d-8b9e-5982c649b749', oscategoryid: 'a6e61f31-8f77-492c-9163-a4a305516e80', description: 'Debian GNU/Linux 12 (64-bit)' },
  { id: 'a1086ec7-d05c-4896-a5e0-2202fc9a0e14', oscategoryid: '2cae6b4a-8471-4214-8674-51ca53ec5b1e', description: 'Oracle Enterprise Linux 6.5 (64-bit)' },
  { id: '876b397e-19f1-4e57-a218-d7ae38047066', oscategoryid: '2cae6b4a-8471-4214-8674-51ca53ec5b1e', description: 'Oracle Linux 7' },
  { id: '5d86cce2-aec3-4bda-858f-07209f9e0bd3', oscategoryid: '2cae6b4a-8471-4214-8674-51ca53ec5b1e', description: 'Oracle Linux 8' },
  { id: '7ce31eae-21fa-42bd-ae34-36691e08a8b5', oscategoryid: '2cae6b4a-8471-4214-8674-51ca53ec5b1e', description: 'Oracle Linux 9' },
  { id: '815e4db4-9bb4-45c3-aac0-04edf976ff85', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Red Hat Enterprise Linux 6.5 (64-bit)' },
  { id: '93026e63-dde7-4d0a-a5d1-d3fc53565b22', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Red Hat Enterprise Linux 7' },
  { id: '544a85bf-c4e6-4e1f-afba-9e0fb206724a', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Red Hat Enterprise Linux 8' },
  { id: 'b3c930ff-9386-4761-86b6-5910151aaf61', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Red Hat Enterprise Linux 9' },
  { id: 'a4f39f76-1c6d-4963-8220-42982cdb8a48', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Rocky Linux 8' },
  { id: 'a5981e0d-6d5f-435f-b997-c4b196066be0', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'Rocky Linux 9' },
  { id: 'ca47076e-30db-4ddf-866f-1b0e300dc7c3', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'AlmaLinux 8' },
  { id: '66234ab6-ac50-4b98-b9c4-73a8e3167b42', oscategoryid: '663a368a-8e9d-4096-909c-18317b79abb7', description: 'AlmaLinux 9' },
  { id: '2217e49a-0917-482c-91e3-33d4e0344282', oscategoryid: '7142b14c-43a6-49d6-8ecb-709199d0a492', description: 'SUSE Linux Enterprise Server 11 SP4 (64-bit)' },
  { id: 'b64e0688-48f6-4b2b-9225-b6130a852938', oscategoryid: '7142b14c-43a6-49d6-8ecb-709199d0a492', description: 'SUSE Linux Enterprise Server 12 SP5 (64-bit)' },
  { id: 'eb286dff-6ab1-41ab-a8dd-f1c3c92266d9', oscategoryid: '7142b14c-43a6-49d6-8ecb-709199d0a492', description: 'SUSE Linux Enterprise Server 15 (64-bit)' },
  { id: '0a792a6a-b6a1-47b9-b318-0d60f21423e0', oscategoryid: '7142b14c-43a6-49d6-8ecb-709199d0a492', description: 'openSUSE Leap 15 (64-bit)' },
  { id: '0f9e46e8-035f-4e5e-b820-316919df8da9', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows 7 (64-bit)' },
  { id: 'd1d27fab-e63d-4087-a262-2143f90ed8ed', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows 8.1 (64-bit)' },
  { id: 'bdeac690-1d2d-4816-83c4-4c08a2f844d4', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows 10 (64-bit)' },
  { id: '27ef89bb-bea2-4e34-bce6-f75c79dc63c1', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows 11 (64-bit)' },
  { id: '8d29a25e-cc05-490f-94d8-6cdb4ab2086e', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows Server 2012 R2 (64-bit)' },
  { id: 'e5661ac2-fb96-46b0-b38a-b97ca6a695b4', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows Server 2016 (64-bit)' },
  { id: '20090a58-29c3-4e0e-ad50-1fb57db746ad', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows Server 2019 (64-bit)' },
  { id: '6c4774f0-8251-4c96-8c95-9b870ca6fdc9', oscategoryid: '3e0d0db3-b539-4a03-9c0b-f06839265578', description: 'Windows Server 2022 (64-bit)' },
  { id: '29549e9c-3267-432d-af74-7e02f61430a5', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other (32-bit)' },
  { id: '60668f5b-55cd-4ede-af24-c08f0f1d5576', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other (64-bit)' },
  { id: 'a07ae952-b418-4bca-8007-1be64cc2ceb3', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other Linux (32-bit)' },
  { id: '8e8f2eb9-f7ba-437a-95bc-afa7e3e4f54b', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other Linux (64-bit)' },
  { id: 'dc0752cb-ab79-466f-853c-644f6d951705', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other PV (32-bit)' },
  { id: '86a46905-c99c-4e3b-bc2b-e1506ca3a91e', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other PV (64-bit)' },
  { id: '1d89d633-5abc-4d0c-b844-16d1fdc55f1b', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other PV Virtio-SCSI (64-bit)' },
  { id: 'b1ea4646-d43d-4975-a92c-004391cbc697', oscategoryid: 'b55d9877-19f8-4902-815d-175cde858fa3', description: 'Other install media' },
  { id: '7d78dbd6-5c8a-49bb-befe-98428f3e974f', oscategoryid: '4743b16d-a18c-44f5-8211-8392fd357a77', description: 'Novell Netware 5.1' },
  { id: '619341ce-9bd0-49e3-9135-c54af4e5583e', oscategoryid: '4743b16d-a18c-44f5-8211-8392fd357a77', description: 'Novell Netware 6.x' },
  { id: 'e2708bb4-5d7c-4197-923f-b3be44f946d1', oscategoryid: '92182987-05ed-4497-8708-df72b93b55d0', description: 'Sun Solaris 10 (64-bit)' },
  { id: '8f60aca0-7d4e-45eb-a738-509c7d43a5b9', oscategoryid: '92182987-05ed-4497-8708-df72b93b55d0', description: 'Sun Solaris 11 (64-bit)' },
  { id: '4dfd8ce7-546b-4e63-88a5-7974d6a74e6d', oscategoryid: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', description: 'Ubuntu 16.04 (64-bit)' },
  { id: 'f071d59e-2c75-4da6-bd7b-1334d77232a9', oscategoryid: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', description: 'Ubuntu 18.04 LTS' },
  { id: 'efe2bf97-4db2-470f-bb92-9db30530ad96', oscategoryid: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', description: 'Ubuntu 20.04 LTS' },
  { id: '676664da-9bd5-4159-8191-a0a3f1a9e817', oscategoryid: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', description: 'Ubuntu 22.04 LTS' },
  { id: 'dcc81016-1203-4c93-b7b7-625c45a243ec', oscategoryid: '7917ac58-1118-40d9-8a3d-2b2fa40e33b6', description: 'Ubuntu 24.04 LTS' },
  { id: '5c84c8a7-594f-4db2-b9fe-7ae6481e9c9e', oscategoryid: '25ea7471-a3ae-497d-9a9e-4b0e6c4f8dd0', description: 'None' },
  { id: 'db88d534-abda-48fc-99a8-db0b9f9bfa90', oscategoryid: '1f030a1c-c93e-4294-8b32-764e3cfc03af', description: 'FreeBSD 11 (64-bit)' },
  { id: '39650ac2-5a79-464a-a891-a00e38520b1f', oscategoryid: '1f030a1c-c93e-4294-8b32-764e3cfc03af', description: 'FreeBSD 12 (64-bit)' },
  { id: '689eb838-df5f-4489-be3a-2b18e8d686ab', oscategoryid: '1f030a1c-c93e-4294-8b32-764e3cfc03af', description: 'FreeBSD 13 (64-bit)' },
  { id: '29f486cc-7091-4359-ad2a-69549109a5a3', oscategoryid: '1f030a1c-c93e-4294-8b32-764e3cfc03af', description: 'FreeBSD 14 (64-bit)' },
];

const TYPES_BY_ID = new Map(OS_TYPES.map((type) => [type.id, type]));
const CATEGORIES_BY_ID = new Map(OS_CATEGORIES.map((category) => [category.id, category]));

export const getOsType = (id: string): OsType | undefined => TYPES_BY_ID.get(id.toLowerCase());
export const getOsCategory = (id: string): OsCategory | undefined => CATEGORIES_BY_ID.get(id.toLowerCase());

/** The type upstream gives a non-bootable ISO (ApiConstants.ISO_GUEST_OS_NONE). */
export const NONE_OS_TYPE: OsType = OS_TYPES.find((type) => type.description === 'None')!;
