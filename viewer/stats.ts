/**
 * What the live view reports: frames per second over the last second, the generation on screen, and how
 * many generations were never shown (gaps between the generations of consecutive frames received).
 */
const WINDOW_MS = 1000

export class FrameStats {
  /** Times (ms) of the frames received within the last second, oldest first. */
  private readonly times: number[] = []
  /** Generation of the last frame received; -1 before the first. */
  generation = -1
  /** Generations skipped between frames received since the view started. */
  skipped = 0
  /** Frames received since the view started. */
  frames = 0

  /**
   * A frame of `generation` arrived at `now` (ms). The first frame skips nothing; a generation lower
   * than the last one means the image was replaced, which starts counting afresh rather than as a gap.
   */
  record (generation: number, now: number): void {
    if (this.generation >= 0 && generation > this.generation + 1) this.skipped += generation - this.generation - 1
    this.generation = generation
    this.frames++
    this.times.push(now)
    this.prune(now)
  }

  /** Frames received in the second before `now`. */
  fps (now: number): number {
    this.prune(now)
    return this.times.length
  }

  private prune (now: number): void {
    let drop = 0
    while (drop < this.times.length && this.times[drop] <= now - WINDOW_MS) drop++
    if (drop > 0) this.times.splice(0, drop)
  }
}
