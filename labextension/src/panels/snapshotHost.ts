/**
 * The attention inspector's host for a snapshot in the run store: the description and the
 * thumbnails arrive once, each matrix is fetched from the server when the view asks for it
 * (cached and queued by the same MatrixQueue as the notebook widget's host), and so is the
 * saved logit lens at a token.
 *
 *   const host = new SnapshotHost(await snapshotInfo(id, name), await snapshotThumbs(id, name));
 *   const view = new InspectorView(host);
 */
import { ISnapshotInfo, snapshotLens, snapshotMatrix } from '../api';
import { MatrixQueue } from '../inspector/requests';
import type {
  IInspectorHost,
  ILensRows,
  IMatrix,
  IMatrixRequest,
  IMeta
} from '../inspector/types';

/** Matrices kept in the browser (a 1,024-token head is 4 MB as float32). */
const CACHE = 6;

export class SnapshotHost implements IInspectorHost {
  private readonly queue: MatrixQueue;

  constructor(
    readonly info: ISnapshotInfo,
    private readonly thumbBytes: Uint8Array
  ) {
    this.queue = new MatrixQueue(
      request => snapshotMatrix(info.run_id, info.name, request),
      CACHE
    );
  }

  meta(): IMeta {
    return this.info.inspector;
  }

  thumbs(): Uint8Array {
    return this.thumbBytes;
  }

  matrix(request: IMatrixRequest): Promise<IMatrix> {
    return this.queue.get(request);
  }

  /** The lens saved with the snapshot (the view asks only when `meta().lens_side` is set). */
  lens(position: number): Promise<ILensRows> {
    return snapshotLens(this.info.run_id, this.info.name, position);
  }
}
