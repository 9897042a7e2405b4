using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.Zero.Samples;

/// <summary>Draws the curves DeepSpeed's csv_monitor wrote (loss, learning rate, validation accuracy) into one PNG.</summary>
internal static class TrainingPlot
{
    /// <summary>Draws the curves into <paramref name="pngPath"/>; the title names the <paramref name="precision"/> the run trained in.</summary>
    public static string Save(string csvFolder, string pngPath, ZeroPrecision precision)
    {
        var loss = Read(csvFolder, "Train_Samples_train_loss.csv");
        var epochLoss = Read(csvFolder, "Train_Samples_epoch_loss.csv");
        var accuracy = Read(csvFolder, "Eval_Samples_accuracy.csv");
        var rate = Read(csvFolder, "Train_Samples_lr.csv");

        var plot = new Plot();
        plot.Title($"Fine-tuning all-MiniLM-L6-v2 on UCI sentiment (2 ranks, {precision.ToString().ToLowerInvariant()})");
        plot.XLabel("samples seen");
        plot.YLabel("loss / accuracy");
        var stepLoss = plot.Add.ScatterLine(loss.X, loss.Y);
        stepLoss.LegendText = "training loss per step";
        stepLoss.LineWidth = 1;
        var perEpoch = plot.Add.Scatter(epochLoss.X, epochLoss.Y);
        perEpoch.LegendText = "mean training loss per epoch";
        perEpoch.LineWidth = 2;
        perEpoch.MarkerSize = 8;
        var validation = plot.Add.Scatter(accuracy.X, accuracy.Y);
        validation.LegendText = "validation accuracy";
        validation.LineWidth = 2;
        validation.MarkerSize = 8;
        var learningRate = plot.Add.ScatterLine(rate.X, rate.Y);
        learningRate.LegendText = "learning rate (right axis)";
        learningRate.LinePattern = LinePattern.Dashed;
        learningRate.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Right.Label.Text = "learning rate";
        plot.Axes.SetLimitsY(0, 1.05, plot.Axes.Left);
        plot.ShowLegend(Edge.Bottom);

        Directory.CreateDirectory(Path.GetDirectoryName(pngPath)!);
        string temp = pngPath + ".tmp.png";
        plot.SavePng(temp, 1000, 560);
        File.Move(temp, pngPath, overwrite: true);
        return pngPath;
    }

    private static (double[] X, double[] Y) Read(string folder, string file)
    {
        var rows = File.ReadLines(Path.Combine(folder, file)).Skip(1)
            .Select(line => line.Split(','))
            .Select(f => (X: double.Parse(f[0], CultureInfo.InvariantCulture), Y: double.Parse(f[1], CultureInfo.InvariantCulture)))
            .ToArray();
        return (rows.Select(r => r.X).ToArray(), rows.Select(r => r.Y).ToArray());
    }
}
