// The widgets of the nodes a page drives or watches (robot, ribot, js,
// camera): one chunk, fetched the first time a card shows one of them, so
// that a page without such nodes never loads them.
import './drive.css'

export { default as RobotWidget } from './RobotWidget.vue'
export { default as RibotWidget } from './RibotWidget.vue'
export { default as JsWidget } from './JsWidget.vue'
export { default as CameraWidget } from './CameraWidget.vue'
