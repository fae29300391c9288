/**
 * Putting code into the user's notebook: a new code cell below the active cell of
 * the notebook the user last worked in.
 *
 *   const path = await insertCodeCell(lab, notebookPath => configCode(cfg));
 */
import { NotebookActions } from '@jupyterlab/notebook';

import type { ILabContext } from './panel';

/**
 * Insert a code cell below the active cell of the current notebook and show it.
 * `code` gets the notebook's path (relative to the server root) so it can write
 * paths relative to the kernel's working directory. Resolves to that path; throws
 * an Error saying what to do when no notebook is open.
 */
export async function insertCodeCell(
  lab: ILabContext,
  code: (notebookPath: string) => string
): Promise<string> {
  const panel = lab.notebooks?.currentWidget;
  if (!panel) {
    throw new Error(
      'No notebook is open: open or create one (File > New > Notebook), then insert again.'
    );
  }
  await panel.context.ready;
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  if (notebook.activeCell?.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  const cell = notebook.activeCell;
  if (!cell) {
    throw new Error(
      `Could not add a cell to ${panel.context.path}; click into it and retry.`
    );
  }
  cell.model.sharedModel.setSource(code(panel.context.path));
  lab.app.shell.activateById(panel.id);
  return panel.context.path;
}
