/**
 * The llmlab JupyterLab extension: three sidebar panels, and a palette command
 * and a launcher item to open each; the Attention inspector also opens as a main-area
 * document (its "Open in main area" button, or the palette). Once a notebook is
 * open, plotly's widget bundle is loaded in idle time for the first chart.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';

import { attentionIcon } from './icons';
import type { IViewState } from './inspector/types';
import { AttentionInspectorPanel } from './panels/attentionInspector';
import { ModelConfigsPanel } from './panels/modelConfigs';
import { ILabContext, LlmlabPanel } from './panels/panel';
import { RunHistoryPanel } from './panels/runHistory';
import { preloadPlotlyWhenIdle } from './plotlyPreload';

/** Palette category shared by every llmlab command. */
const CATEGORY = 'llmlab';
/** Launcher section of the three panels' items. */
const LAUNCHER_CATEGORY = 'llmlab';

/** A panel, the command that opens it and its place in the left sidebar. */
interface IPanelEntry {
  panel: LlmlabPanel;
  command: string;
  label: string;
  rank: number;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'llmlab:plugin',
  description:
    'llmlab panels: Model configs, Attention inspector, Run history.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, INotebookTracker, ILauncher],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null,
    launcher: ILauncher | null
  ): void => {
    const lab: ILabContext = { app, notebooks };
    const entries: IPanelEntry[] = [
      {
        panel: new ModelConfigsPanel(lab),
        command: 'llmlab:open-model-configs',
        label: 'Model configs',
        rank: 600
      },
      {
        panel: new AttentionInspectorPanel(lab, {
          main: false,
          openMain: shown => void app.commands.execute(OPEN_MAIN, { ...shown })
        }),
        command: 'llmlab:open-attention-inspector',
        label: 'Attention inspector',
        rank: 601
      },
      {
        panel: new RunHistoryPanel(lab),
        command: 'llmlab:open-run-history',
        label: 'Run history',
        rank: 602
      }
    ];

    for (const { panel, command, label, rank } of entries) {
      app.shell.add(panel, 'left', { rank });
      restorer?.add(panel, panel.id);
      app.commands.addCommand(command, {
        label: args => (args.isLauncher ? label : `llmlab: Open ${label}`),
        caption: panel.title.caption,
        icon: panel.title.icon,
        execute: () => app.shell.activateById(panel.id)
      });
      palette?.addItem({ command, category: CATEGORY });
      launcher?.add({ command, category: LAUNCHER_CATEGORY, rank, args: { isLauncher: true } });
    }

    app.commands.addCommand(OPEN_MAIN, {
      label: 'llmlab: Open Attention inspector in the main area',
      caption: 'An attention inspector as a document in the main work area, with room for the heatmap',
      icon: attentionIcon,
      execute: args => {
        const initial = args.runId
          ? {
              runId: String(args.runId),
              name: String(args.name),
              state: (args.state || {}) as Partial<IViewState>
            }
          : undefined;
        const panel = new AttentionInspectorPanel(lab, { main: true, initial });
        app.shell.add(panel, 'main');
        app.shell.activateById(panel.id);
        return panel.id;
      }
    });
    palette?.addItem({ command: OPEN_MAIN, category: CATEGORY });
    void app.restored.then(() => preloadPlotlyWhenIdle(notebooks));
  }
};

/** Opens an Attention inspector as a main-area document (args: runId, name, state). */
const OPEN_MAIN = 'llmlab:open-attention-inspector-main';

export default plugin;
